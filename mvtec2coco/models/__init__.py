"""Training on converted data: torchvision classifiers (with class-imbalance remedies)."""
