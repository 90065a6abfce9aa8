"""Two-way sync, the Salesforce → app direction: poll each configured object for changes since a durable
watermark (poll.py), drop repeats and our own echoes (echo.py), turn each change into a Segment-shaped event
(changes.py), publish it to Kafka or a Segment-compatible HTTP endpoint (publish.py), then advance the
watermark (runner.py). See docs/two-way-sync.md."""
