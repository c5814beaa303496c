"""The web layer: the boundary in front (web.boundary), the page and its events (page, team_page,
operator_page, over the components in components), wired one way (events: the caller resolved first,
outputs by name), their handlers (one call into `studio.service.Studio` each; a job's admission in
admission) and markup (render, style_cards, team_render, operator_render, line_words), and the media
route. The only package that imports gradio.
"""
