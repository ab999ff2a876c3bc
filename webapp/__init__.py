"""learnloop's people-facing layer: the command line and (later) the web app and worker."""
