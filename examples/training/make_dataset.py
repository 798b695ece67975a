# The data owner's private dataset, generated: 4,000 users of a made-up service, 8 features each
# (age, sessions per week, minutes per session, …) and whether they renewed their subscription,
# from a hidden rule plus noise. Writes CSV with a header; the first 3,200 rows are for training
# and validation, the rest (written to a second file) for the later protected inference.
# Usage: python3 make_dataset.py TRAIN.csv TEST.csv
import random
import sys

random.seed(20261203)
header = ["age", "sessions", "minutes", "tenure_months", "support_calls", "discount", "devices", "region"]
rows = []
for _ in range(4000):
    age = random.randint(18, 80)
    sessions = random.randint(0, 30)
    minutes = round(random.uniform(1, 120), 1)
    tenure = random.randint(1, 96)
    calls = random.randint(0, 8)
    discount = random.choice([0, 5, 10, 20])
    devices = random.randint(1, 5)
    region = random.randint(0, 4)
    score = 0.08 * sessions + 0.01 * minutes + 0.02 * tenure - 0.35 * calls + 0.03 * discount + 0.2 * devices - 1.2
    renewed = 1 if score + random.gauss(0, 0.5) > 0 else 0
    rows.append([age, sessions, minutes, tenure, calls, discount, devices, region, renewed])
for path, part in ((sys.argv[1], rows[:3200]), (sys.argv[2], rows[3200:])):
    with open(path, "w") as f:
        f.write(",".join(header + ["renewed"]) + "\n")
        for r in part:
            f.write(",".join(str(v) for v in r) + "\n")
print(f"wrote {len(rows)} rows")
