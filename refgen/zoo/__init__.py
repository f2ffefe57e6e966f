"""``refgen zoo``: the taxonomy of generative models, measured.

One representative of each of the seven families (``REPRESENTATIVES``) and two classical
baselines (a histogram and a kernel density estimate, ``refgen.zoo.baselines``) are trained
on the same data and measured by the same code (``refgen.zoo.measure``): the likelihood and
its kind, the sampling cost, the sample quality, the parameter count and the training time.
``run_zoo`` (``refgen.zoo.run``) writes the table and the figures (``refgen.zoo.report``)
and resumes where a killed run stopped.
"""
from .baselines import BASELINES, HistogramDensity, KernelDensity
from .measure import COLUMNS, measure_model
from .run import BUDGETS, DATASETS, REPRESENTATIVES, jobs_for, run_zoo

__all__ = ["run_zoo", "jobs_for", "BUDGETS", "DATASETS", "REPRESENTATIVES", "BASELINES",
           "HistogramDensity", "KernelDensity", "COLUMNS", "measure_model"]
