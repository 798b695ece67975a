# Protected inference with the protected weights train.py wrote: predicts, for each row of a CSV
# (the label column, if present, is ignored), whether the user renews, and writes one line per
# row plus the accuracy when labels are there.
# Usage: python3 predict.py WEIGHTS.pt ROWS.csv PREDICTIONS.txt
import sys

import torch
from torch import nn

weights_path, rows_path, out_path = sys.argv[1:4]
saved = torch.load(weights_path)
n = len(saved["features"])
model = nn.Sequential(nn.Linear(n, 32), nn.ReLU(), nn.Linear(32, 2))
model.load_state_dict(saved["state_dict"])
model.eval()
with open(rows_path) as f:
    f.readline()
    rows = [[float(v) for v in line.split(",")] for line in f if line.strip()]
data = torch.tensor(rows)
x = (data[:, :n] - saved["mean"]) / saved["std"]
with torch.no_grad():
    pred = model(x).argmax(1)
with open(out_path, "w") as f:
    for p in pred.tolist():
        f.write(f"{'renews' if p else 'leaves'}\n")
    if data.shape[1] > n:
        acc = (pred == data[:, n].long()).float().mean().item()
        f.write(f"accuracy {acc:.3f} on {len(rows)} rows\n")
print(f"wrote {out_path}")
