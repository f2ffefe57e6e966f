import resource, sys, time
import numpy as np
from autodiff.ops import conv
if sys.argv[1] == "nocols":
    def fwd(self, x, w, geom):
        self.geom = geom
        self.cols = None
        return conv._conv_raw(x, w, geom)
    conv.Conv2d.forward = fwd
from benchmarks import frameworks, workloads, harness
rf = frameworks.get("refgen")
w = workloads.WORKLOADS["unet"]
rf.manual_seed(0)
step = workloads.make_step(rf, w, rf.build(w.make_model, "float32"), w.make_batch(np.random.default_rng(1), np.float32, 64))
step()
a = resource.getrusage(resource.RUSAGE_SELF)
ts = harness.time_interleaved({"s": step}, 1, 6)["s"]
b = resource.getrusage(resource.RUSAGE_SELF)
print(sys.argv[1], "median %.0f ms" % (1e3 * harness.summarize(ts)[0]), "min %.0f" % (1e3*min(ts)), "faults/step %.0f" % ((b.ru_minflt - a.ru_minflt) / 7), "sys/step %.0f ms" % ((b.ru_stime - a.ru_stime) / 7 * 1e3), "maxrss %.0f MiB" % (b.ru_maxrss / 1024))
