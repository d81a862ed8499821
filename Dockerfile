# Self-hosted image of the dashboard. Build: docker build -t fer-dashboard .
# Run (public demo mode):  docker run -p 8501:8501 -e FER_DEMO_MODE=1 fer-dashboard
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3 VENV=/opt/venv
WORKDIR /app

# Same requirements file and a clean virtual environment, as the README's app command.
COPY requirements.txt .
RUN python -m venv $VENV && $VENV/bin/pip install --no-cache-dir -r requirements.txt

COPY . .
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read() != b'ok')"]
CMD ["/opt/venv/bin/streamlit", "run", "app.py", "--server.port=8501", "--server.address=0.0.0.0", "--server.headless=true"]
