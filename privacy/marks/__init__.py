"""What every headshot carries: C2PA content credentials (content_credentials) and an invisible watermark
(watermark), applied and verified together by provenance.
"""
