"""Code that runs on the hosts inside Ray Serve. It never imports `console` or `cluster`."""
