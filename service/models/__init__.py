"""`python -m service.models`: the first name of `python -m service.weights` (model weights'
offline preparation), kept because scripts, images and docs call it."""
