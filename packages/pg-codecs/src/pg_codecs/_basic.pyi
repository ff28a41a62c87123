"""Codecs of the basic scalar types (bool, integers, floats, text, bytea, ...).

Importing the module registers them; it has no public Python names.
"""
