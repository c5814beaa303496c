"""The web boundary, in front of Gradio: the only way in (middleware: routes, session binding, headers),
uploads sealed on arrival (uploads), who may fetch what (web_access), limits per browser and per address
(rate_limit), and which address a request really comes from (client_address).
"""
