"""Networks: the registry of architectures, their tf_keras builders, and weights as plain arrays
(plus the tfmot wrappers that export a ticket). Imports no other lthnb folder at run time.
"""
