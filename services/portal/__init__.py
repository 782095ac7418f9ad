"""The web portal: a backend-for-frontend over the four services' public HTTP APIs (owns no contest data)."""
