"""Cost prediction: the LUT, its calibration and the backend's fusion rule meet here,
for any space."""
