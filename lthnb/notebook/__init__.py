"""Notebook plumbing: the Setup cell, progress bars, the repository root and the git filter that
keeps outputs out of commits. Imports params only; imports neither TensorFlow nor IPython.
"""

from lthnb.notebook.setup_cell import setup

__all__ = ["setup"]
