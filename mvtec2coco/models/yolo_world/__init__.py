"""models/yolo_world"""
