"""Exact test NLL and KL of a 2-D EBM with log Z on the 256 x 256 grid (whatever grid it trained with)."""
import sys
import refgen
from refgen.data import load_dataset
m = refgen.load(sys.argv[1])
trained_grid = m.config["grid"]
m.config["grid"] = 256
m._log_z_cache = (None, None)
test = load_dataset("ring8:std=0.1", split="test")
r = m.evaluate(test)
print(f"trained with grid {trained_grid}; evaluated with grid 256 on {len(test)} test points:",
      {k: round(float(v), 5) for k, v in r.items()})
