"""The face measurements that screening and scoring share (dlib, CPU): detection, the 128-d descriptor, the
face-centred crop.

face_model (detect faces, embed one, distance between two) · face_descriptor (dlib's descriptor, batched) ·
headshot_crop (the square crop around a face) · face_parts (68 landmarks: mouth, eyes, jaw; caption words).
Imports only `errors` and `settings`: no torch, no gradio.
"""
