"""The likeness recipe on top of plain generation: what the best headshot pipelines do beyond one image per prompt.

options (the recipe's knobs, from settings) · ranking (face encoders, over-generate and keep the best) ·
face_detail (the face redrawn at the model's native size, pasted back feathered) · prior_set (prior
preservation's class set, made by the base model itself, never from a visitor's photo).
Everything here works in memory: a candidate that is not kept is dropped, never written anywhere.
"""
