# For scripts/bench-pytorch.sh: the tutorial's model and photo, timed. Prints the seconds taken
# by `import torch, torchvision`, by loading the model, and the median of 10 inferences.
import time

t0 = time.perf_counter()
import torch  # noqa: E402
import torchvision  # noqa: E402,F401
from PIL import Image  # noqa: E402
from torchvision import transforms  # noqa: E402

t_import = time.perf_counter() - t0
import os  # noqa: E402

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
torch.set_num_threads(max(1, os.cpu_count() or 1))
t0 = time.perf_counter()
model = torch.load("model.pt")
model.eval()
t_load = time.perf_counter() - t0
transform = transforms.Compose(
    [
        transforms.Resize(256),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.498, 0.498, 0.498], std=[0.502, 0.502, 0.502]),
    ]
)
batch = torch.unsqueeze(transform(Image.open("input.jpg").convert("RGB")), 0)
times = []
with torch.no_grad():
    model(batch)
    for _ in range(10):
        t0 = time.perf_counter()
        model(batch)
        times.append(time.perf_counter() - t0)
times.sort()
print(f"bench import={t_import:.4f} load={t_load:.4f} infer={(times[4] + times[5]) / 2:.4f}")
