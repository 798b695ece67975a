"""Classify every image of a directory with ONNX Runtime, loading the model once.

Nothing here knows about ward: the preprocessing is classify.py's (imported from beside this
file). Run natively it reads plain files; run under `ward run` the same paths are protected files
that ward decrypts on the fly, and the result it writes is encrypted.

    python3 classify_many.py MODEL LABELS IMAGE_DIR RESULT

RESULT gets one line per image, in sorted file-name order: `NAME: top-1 label (probability%)`.
"""
import os
import sys

import numpy as np
import onnxruntime as ort

from classify import preprocess


def main(model, labels, image_dir, result):
    with open(labels) as f:
        classes = [line.rstrip("\n") for line in f]
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    images = sorted(e for e in os.listdir(image_dir) if not e.startswith("."))
    with open(result, "w") as out:
        for image in images:
            logits = session.run(None, {name: preprocess(os.path.join(image_dir, image))})[0][0]
            logits = logits.astype(np.float64)
            p = np.exp(logits - logits.max())
            p /= p.sum()
            i = int(np.argmax(p))
            out.write(f"{image}: {classes[i]} ({p[i] * 100:.1f}%)\n")
    print(f"classified {len(images)} image(s)")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(f"usage: {sys.argv[0]} MODEL LABELS IMAGE_DIR RESULT")
    main(*sys.argv[1:5])
