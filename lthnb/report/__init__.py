"""What the notebooks show: figures, tables, generated sentences, the round explorer and the
markdown of REPRODUCTION.md. The top layer: imports anything below, and nothing imports it.
"""
