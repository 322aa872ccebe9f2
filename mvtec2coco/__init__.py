"""mvtec2coco: trusted conversion of anomaly-detection datasets into YOLO and COCO labels."""

__version__ = "0.1.0"
