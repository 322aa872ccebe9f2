"""Exporters: YOLO (boxes, polygons) and COCO, sharing one image writer."""

FORMATS = ("yolo", "yolo-seg", "coco")
