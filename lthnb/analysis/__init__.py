"""What a run's results say: statistics over trials, mask analyses and instability. Imports
lottery, training, runs and everything below; never report.
"""
