# The tutorial's PyTorch workload, in its style: load a whole pickled model from a relative path,
# classify input.jpg with torchvision's transforms, and write the top-5 classes (from
# classes.txt) with their probabilities to result.txt. Nothing here knows about ward: run it
# natively, or unmodified under `ward run`, where model.pt, input.jpg and classes.txt are
# protected files decrypted on read and result.txt is encrypted on write.
import os

# Newer torch (>= 2.6) loads only weights by default; a whole pickled model needs the old
# behaviour. Debian's torch 1.13 ignores this.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import torch
from PIL import Image
from torchvision import transforms

torch.set_num_threads(max(1, os.cpu_count() or 1))

model = torch.load("model.pt")
model.eval()

# EfficientNet-Lite0's preprocessing: 256 → centre crop 224, (x - 0.498) / 0.502 per channel.
transform = transforms.Compose(
    [
        transforms.Resize(256),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.498, 0.498, 0.498], std=[0.502, 0.502, 0.502]),
    ]
)

img = Image.open("input.jpg").convert("RGB")
batch = torch.unsqueeze(transform(img), 0)

with torch.no_grad():
    out = model(batch)

with open("classes.txt") as f:
    classes = [line.strip() for line in f.readlines()]

probabilities = torch.nn.functional.softmax(out[0], dim=0) * 100
top = torch.topk(probabilities, 5)
with open("result.txt", "w") as f:
    for p, idx in zip(top.values.tolist(), top.indices.tolist()):
        f.write(f"{classes[idx]}: {p:.2f}%\n")
print("wrote result.txt")
