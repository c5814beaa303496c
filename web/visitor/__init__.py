"""What a visitor meets before and around the studio's form: the first screen (what you get, how it works, the
privacy promise) and the page's guided flow. Markup only, no Gradio and no state: web.page lays it out."""
