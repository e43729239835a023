"""The run folder: its paths, atomic files and locks, the trial state, and reading its tables
back. Imports params, controls and the bottom layer; never training or anything above.
"""
