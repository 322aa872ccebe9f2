"""anomalib's image models on our data and split, scored by our one evaluation (``mvtec2coco anomalib``)."""
