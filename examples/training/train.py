# Trains a small classifier (will a user renew?) on a CSV dataset with a DataLoader using worker
# processes, then writes the trained weights and a metrics report. Nothing here knows about ward:
# under `ward run` the dataset is a protected file decrypted on read, and the weights and the
# report are written as protected files.
# Usage: python3 train.py DATASET.csv WEIGHTS.pt METRICS.json
import json
import sys
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

dataset_path, weights_path, metrics_path = sys.argv[1:4]
torch.manual_seed(7)
torch.set_num_threads(1)

with open(dataset_path) as f:
    header = f.readline().strip().split(",")
    rows = [[float(v) for v in line.split(",")] for line in f if line.strip()]
data = torch.tensor(rows)
x, y = data[:, :-1], data[:, -1].long()
mean, std = x.mean(0), x.std(0) + 1e-6
x = (x - mean) / std
split = int(len(x) * 0.8)
train = TensorDataset(x[:split], y[:split])
val_x, val_y = x[split:], y[split:]

model = nn.Sequential(nn.Linear(x.shape[1], 32), nn.ReLU(), nn.Linear(32, 2))
opt = torch.optim.Adam(model.parameters(), lr=0.01)
loss_fn = nn.CrossEntropyLoss()
# Worker processes, as a real input pipeline would use (they are forked inside the sandbox).
loader = DataLoader(train, batch_size=64, shuffle=True, num_workers=2)
history = []
for epoch in range(5):
    started = time.perf_counter()
    model.train()
    total = 0.0
    for bx, by in loader:
        opt.zero_grad()
        loss = loss_fn(model(bx), by)
        loss.backward()
        opt.step()
        total += loss.item() * len(bx)
    model.eval()
    with torch.no_grad():
        accuracy = (model(val_x).argmax(1) == val_y).float().mean().item()
    seconds = time.perf_counter() - started
    history.append({"epoch": epoch + 1, "loss": round(total / split, 4), "val_accuracy": round(accuracy, 4)})
    print(f"epoch {epoch + 1}: loss {total / split:.4f}, validation accuracy {accuracy:.3f} ({seconds:.3f} s)")

torch.save({"state_dict": model.state_dict(), "mean": mean, "std": std, "features": header[:-1]}, weights_path)
with open(metrics_path, "w") as f:
    json.dump({"rows": len(rows), "epochs": history, "final_val_accuracy": history[-1]["val_accuracy"]}, f, indent=2)
    f.write("\n")
print(f"wrote {weights_path} and {metrics_path}")
