"""Data sets: where their files are found, how each on-disk format is read and checked (one's
own .npz or image folder too), and the train/validation/test split. The bottom layer: imports
nothing else of lthnb.
"""
