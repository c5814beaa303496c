"""Upload to screened photo: decode safely and strip metadata (ingest), check faces (screening), and hold an
unfinished set in memory until it passes (photo_set). Nothing here writes to disk.
"""
