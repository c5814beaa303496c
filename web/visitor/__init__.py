"""What a visitor meets before and around the studio's form: the first screen (what you get, how it works, the
privacy promise), the photo check's file names and tools, the words of a run's wait. Mostly markup and words;
web.page lays them out and web.handlers calls them."""
