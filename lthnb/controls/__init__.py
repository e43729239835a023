"""The kinds of unit a round trains (the ticket and its controls) and where each control starts,
as pure numpy. Kind names are part of the run folder's format. Imports nothing else of lthnb.
"""
