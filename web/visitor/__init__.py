"""What a visitor meets before and around the studio's form: the first screen (what you get, how it works, the
privacy promise) and the page's guided flow, the photo check's file names and tools, the words of a run's wait:
markup and words that web.page lays out and web.handlers calls; and the favourites kept with the session
(favourites: the gallery drawn with the session's stars, and the guarded event a star saves through)."""
