"""/metrics: the scrape-time collectors and the (TLS) server."""
