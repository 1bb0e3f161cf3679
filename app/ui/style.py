"""The app's look: one style sheet, calm colours, readable type."""

from __future__ import annotations

STYLE_SHEET = """
QMainWindow, #chatView, #libraryView, #welcomePanel { background: #f6f7f9; }
QWidget { font-size: 13px; color: #1d2430; }
#transcriptInner { background: #f6f7f9; }
#conversationList { background: #eef1f5; }
#conversations { background: transparent; border: none; }
#conversations::item { padding: 7px 8px; border-radius: 6px; }
#conversations::item:selected { background: #dbe5f5; color: #10213d; }
#newChatButton { padding: 7px; font-weight: 600; }
#userMessage { background: #e4ecfa; border-radius: 10px; margin-left: 80px; }
#answerMessage { background: #ffffff; border: 1px solid #e1e5eb; border-radius: 10px; margin-right: 40px; }
#messageBody { font-size: 14px; }
#messageStatus { color: #6b7685; font-size: 12px; }
#sourceCard { background: #f8fafc; border: 1px solid #e1e6ee; border-left: 3px solid #3b82f6; border-radius: 6px; }
#sourceCard:hover { background: #eef4fd; border-color: #b9cdf0; border-left: 3px solid #1f5fbf; }
#sourceCard[cited="false"] { border-left: 3px solid #c3cad5; }
#cardOrigin { color: #6b7685; font-size: 11px; }
#cardExcerpt { color: #3a4452; font-size: 12px; }
#composer { background: #f6f7f9; border-top: 1px solid #e1e5eb; }
#questionInput { background: #ffffff; border: 1px solid #cfd6e0; border-radius: 8px; padding: 6px; font-size: 14px; }
#questionInput:focus { border-color: #3b82f6; }
#sendButton { background: #2563eb; color: white; border: none; border-radius: 8px; font-weight: 600; font-size: 14px; }
#sendButton:hover { background: #1d4ed8; }
#sendButton:disabled { background: #9db5e8; }
#sendButton[stop="true"] { background: #b3261e; }
#scopeLabel { color: #6b7685; font-size: 12px; }
#readerBar { background: #eef1f5; border-bottom: 1px solid #e1e5eb; }
#readerTitle { font-weight: 600; }
#readerBrowser { background: #ffffff; border: none; }
#welcomeCard { background: #ffffff; border: 1px solid #e1e5eb; border-radius: 12px; }
#welcomeTitle { font-size: 22px; font-weight: 600; }
#welcomeText { font-size: 14px; color: #3a4452; }
#dropHint { border: 2px dashed #b9c4d4; border-radius: 10px; color: #3a4452; background: #f8fafc; }
#demoButton { background: #2563eb; color: white; border: none; border-radius: 6px; padding: 8px 14px; font-weight: 600; }
#demoButton:disabled { background: #9db5e8; }
#demoStatus, #modelNote, #libraryHint, #pageNote { color: #5f6b7a; }
#librarySummary { font-size: 15px; }
#sourcesTable { background: #ffffff; border: 1px solid #e1e5eb; border-radius: 6px; }
#pageHeading { font-size: 18px; font-weight: 600; margin-bottom: 4px; }
#fitBox { background: #f3f6fb; border: 1px solid #dbe3ef; border-radius: 8px; }
#settingsError { color: #b3261e; font-weight: 600; }
#settingsPages::item { padding: 8px; }
QStatusBar QLabel { color: #4a5462; padding: 0 8px; }
QTabWidget::pane { border: none; }
QTabBar::tab { padding: 7px 18px; }
"""
