# The tutorial's PyTorch inference with its files as arguments: MODEL IMAGE CLASSES RESULT.
# The model belongs to one owner and the photo and class list to another; the script knows
# nothing of that, nor of ward.
import os
import sys

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import torch
from PIL import Image
from torchvision import transforms

model_path, image_path, classes_path, result_path = sys.argv[1:5]
torch.set_num_threads(max(1, os.cpu_count() or 1))

model = torch.load(model_path)
model.eval()
transform = transforms.Compose(
    [
        transforms.Resize(256),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.498, 0.498, 0.498], std=[0.502, 0.502, 0.502]),
    ]
)
batch = torch.unsqueeze(transform(Image.open(image_path).convert("RGB")), 0)
with torch.no_grad():
    out = model(batch)
with open(classes_path) as f:
    classes = [line.strip() for line in f]
top = torch.topk(torch.nn.functional.softmax(out[0], dim=0) * 100, 5)
with open(result_path, "w") as f:
    for p, idx in zip(top.values.tolist(), top.indices.tolist()):
        f.write(f"{classes[idx]}: {p:.2f}%\n")
print(f"wrote {result_path}")
