"""Data sets: where their files are found, how each on-disk format is read and checked, and the
train/validation/test split. The bottom layer: imports nothing else of lthnb.
"""
