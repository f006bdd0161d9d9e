"""The evaluation benchmark: heads beyond the model, their pictures, scoring and the report.

  benchmark_faces      whole ICT heads with out-of-model detail, eyes, teeth and skin
  landmark_calibration pictures of known shape that calibrate the landmark embedding
  evaluation           Tables 1-2 analogues: single- and multi-image rows, oracle, floor, ablation
  evaluation_report    the report's tables and plots

The top of the package: may import from any other subpackage.
"""
