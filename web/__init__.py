"""The web layer: the boundary in front (web.boundary), the page and its events (page, team_page,
operator_page), their handlers (one call into `studio.service.Studio` each) and markup (render, style_cards,
team_render, operator_render), and the media route. The only package that imports gradio.
"""
