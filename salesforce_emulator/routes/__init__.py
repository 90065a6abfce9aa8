"""HTTP routes of the emulator, one module per Salesforce resource family."""
