"""Classify a photo with ONNX Runtime: the tutorial's inference script, for an ONNX model.

Nothing here knows about ward. Run natively it reads plain files; run under `ward run` the same
paths are protected files that ward decrypts on the fly, and the result it writes is encrypted.

    python3 classify.py MODEL LABELS IMAGE RESULT
"""
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image


def preprocess(path):
    # EfficientNet-Lite0's own preprocessing: shorter side to 256 (bilinear), centre 224 x 224,
    # (pixel - 127) / 128, channels first.
    img = Image.open(path).convert("RGB")
    w, h = img.size
    scale = 256 / min(w, h)
    img = img.resize((round(w * scale), round(h * scale)), Image.BILINEAR)
    w, h = img.size
    left, top = (w - 224) // 2, (h - 224) // 2
    img = img.crop((left, top, left + 224, top + 224))
    x = (np.asarray(img, dtype=np.float32) / 255.0 - 0.498) / 0.502
    return x.transpose(2, 0, 1)[None, ...]


def main(model, labels, image, result):
    with open(labels) as f:
        classes = [line.rstrip("\n") for line in f]
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    logits = session.run(None, {name: preprocess(image)})[0][0].astype(np.float64)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    top = np.argsort(-p)[:5]
    with open(result, "w") as f:
        for rank, i in enumerate(top, 1):
            f.write(f"{rank}. {classes[i]} ({p[i] * 100:.1f}%)\n")
    print(f"top-1: {classes[top[0]]}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
