"""Imbalanced data: class weights, focal loss, distributed resampling samplers, metrics."""
