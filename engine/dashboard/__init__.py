"""What the Streamlit pages show, as plain values, tables and charts (plus shared widgets)."""
