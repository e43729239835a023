"""Iterative magnitude pruning with rewinding: trials of rounds with their controls, resumable,
and the fan-out of trials over processes. Imports training, runs and everything below.
"""
