"""What every service shares: settings, the campaign calendar, stream names, migrations."""
