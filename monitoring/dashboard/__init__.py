"""The operator's monitoring dashboard in the admin: reads, SVG charts, views."""
