"""Studies: do distillation methods beat the apprentice alone, measured over seeds on synthetic data.

The library behind `tools/reproduce.py` and `tools/distillation_study.py`, so that a study is data
(`protocols`) run by a few functions, not a script: `jobs` trains, resumes or reuses one run, `dataset`
points runs at the study's data, `calibration` matches the methods' loss weights, `aggregate` turns runs
into seed statistics, `report` and `figures` write them, `paper` and `warm` run the reproduction's two
protocols, `distillation` the from-scratch study, whose committed record is the `ledger`, its features'
`similarity` to the expert and its `zoo` entries.
"""
