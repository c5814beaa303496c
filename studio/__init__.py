"""The application service: what a visitor's session can do, in order, over the ML and the privacy packages.

service (`Studio`: consent → upload → screen → seal → train → mark → erase, one orchestrating class) ·
instant_steps (Instant mode's steps, a part of Studio) · runs (what a run returns) · downloads (sizes and ZIPs
of sealed headshots) · model_state (is the base model ready) · jobs (the GPU line) · workers, worker_health,
line_metrics (queue mode on Celery) · gpu_call, zerogpu (the GPU call on a ZeroGPU Space).
Imports `pipeline`, `privacy`, `faces`; never gradio or `web`.
"""
