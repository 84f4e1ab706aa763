; Idlegrid's Windows installer, built with Debian's makensis by scripts/package-windows (see
; docs/packaging-windows.md). A 64-bit installer (a 32-bit one does nothing under a 64-bit-only Wine),
; per user and without admin rights: the programs under %LOCALAPPDATA%\Programs\Idlegrid, a Start-menu
; entry, an optional start at sign-in, and an entry in Apps & features. The earnings data lives apart,
; in %LOCALAPPDATA%\Idlegrid, and outlives the program unless the person asks otherwise.
;
; Defines (makensis -D...): VERSION (as in Cargo.toml), VERSION_NUMBERS (a.b.c.d, for the file's
; version resource), STAGE (the folder holding what is installed), ICON, OUTFILE, APP when STAGE holds
; the desktop app (idlegrid-desktop.exe, idlegrid-window.exe and WebView2Loader.dll), and optionally
; COMPRESSOR.

Unicode true
Target amd64-unicode
RequestExecutionLevel user
ManifestDPIAware true
; The smallest download; a test build packs faster with COMPRESSOR=zlib.
!ifndef COMPRESSOR
  !define COMPRESSOR "/SOLID lzma"
!endif
SetCompressor ${COMPRESSOR}

!include MUI2.nsh
!include LogicLib.nsh
!include FileFunc.nsh
!include Sections.nsh

!define PRODUCT "Idlegrid"
!define PUBLISHER "Idlegrid"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${PRODUCT}"
!define RUN_KEY "Software\Microsoft\Windows\CurrentVersion\Run"
!define STARTUP_APPROVED_KEY "Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run"
; The value the app's own "Start at login" setting writes (src-tauri/autostart.rs, through the
; auto-launch crate): one entry, whichever of the two set it.
!define RUN_VALUE "Idlegrid"
!define WEBVIEW2_CLIENT "Microsoft\EdgeUpdate\Clients\{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5}"
!define WEBVIEW2_PAGE "https://developer.microsoft.com/microsoft-edge/webview2/"
!define DATA_DIR "$LOCALAPPDATA\${PRODUCT}"
!ifdef APP
  !define MAIN_EXE "idlegrid-desktop.exe"
!else
  !define MAIN_EXE "idlegrid.exe"
!endif

Name "${PRODUCT}"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\Programs\${PRODUCT}"
; An upgrade goes where the last install went.
InstallDirRegKey HKCU "${UNINSTALL_KEY}" "InstallLocation"
BrandingText "${PRODUCT} ${VERSION}"
ShowInstDetails show
ShowUninstDetails show

VIProductVersion "${VERSION_NUMBERS}"
VIFileVersion "${VERSION_NUMBERS}"
VIAddVersionKey "ProductName" "${PRODUCT}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "CompanyName" "${PUBLISHER}"
VIAddVersionKey "FileDescription" "${PRODUCT} ${VERSION} Setup"
VIAddVersionKey "LegalCopyright" "MIT OR Apache-2.0"

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_ABORTWARNING
!define MUI_COMPONENTSPAGE_NODESC

!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!ifdef APP
  !define MUI_FINISHPAGE_RUN "$INSTDIR\${MAIN_EXE}"
  !define MUI_FINISHPAGE_RUN_TEXT "Start ${PRODUCT} now"
!endif
!insertmacro MUI_PAGE_FINISH

!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES

!insertmacro MUI_LANGUAGE "English"

; Ends the app and its window, so that their files can be replaced or removed: asked to close first,
; then, after a moment, ended. The app's job workers end with it (their Job Object closes with the app);
; a job cut short this way is given to another provider by its pool. (Wine's taskkill has no /T.)
!macro DEFINE_CLOSE_RUNNING un
  Function ${un}CloseRunning
    nsExec::Exec '"$SYSDIR\taskkill.exe" /IM idlegrid-desktop.exe'
    Pop $0
    ${If} $0 == 0
      Sleep 2000
    ${EndIf}
    nsExec::Exec '"$SYSDIR\taskkill.exe" /F /IM idlegrid-window.exe /IM idlegrid-desktop.exe'
    Pop $0
  FunctionEnd
!macroend
!insertmacro DEFINE_CLOSE_RUNNING ""
!insertmacro DEFINE_CLOSE_RUNNING "un."

Section "${PRODUCT}" SecProgram
  SectionIn RO
  Call CloseRunning
  SetOutPath "$INSTDIR"
  ; Replaced whole, so that an example dropped from this version does not linger after an upgrade.
  RMDir /r "$INSTDIR\examples"
  File "${STAGE}\idlegrid.exe"
  !ifdef APP
    File "${STAGE}\idlegrid-desktop.exe"
    File "${STAGE}\idlegrid-window.exe"
    File "${STAGE}\WebView2Loader.dll"
  !endif
  File /r "${STAGE}\examples"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  !ifdef APP
    CreateShortCut "$SMPROGRAMS\${PRODUCT}.lnk" "$INSTDIR\${MAIN_EXE}" "" "$INSTDIR\${MAIN_EXE}" 0 \
      SW_SHOWNORMAL "" "Share your GPU while you are away"
  !endif
SectionEnd

!ifdef APP
  Section "Start ${PRODUCT} when I sign in" SecAutostart
  SectionEnd

  ; Either way the choice is written, so that unticking it on a reinstall takes the entry away.
  Section "-Autostart"
    ${If} ${SectionIsSelected} ${SecAutostart}
      WriteRegStr HKCU "${RUN_KEY}" "${RUN_VALUE}" '"$INSTDIR\${MAIN_EXE}" --hidden'
      ; A "disabled" mark left by Task Manager would keep Windows from starting it.
      DeleteRegValue HKCU "${STARTUP_APPROVED_KEY}" "${RUN_VALUE}"
    ${Else}
      DeleteRegValue HKCU "${RUN_KEY}" "${RUN_VALUE}"
    ${EndIf}
  SectionEnd

  Section "-WebView2"
    Call WebView2Version
    Pop $0
    ${If} $0 == ""
      DetailPrint "Microsoft Edge WebView2 Runtime is missing: the window needs it, the tray and engine do not."
      MessageBox MB_YESNO|MB_ICONINFORMATION \
        "${PRODUCT}'s window needs the Microsoft Edge WebView2 Runtime, which this PC does not have.$\r$\n$\r$\nThe tray icon and the engine run without it: ${PRODUCT} can share this GPU as it is.$\r$\n$\r$\nOpen Microsoft's download page for WebView2 now?" \
        /SD IDNO IDNO webview2_done
      ExecShell "open" "${WEBVIEW2_PAGE}"
      webview2_done:
    ${Else}
      DetailPrint "Microsoft Edge WebView2 Runtime $0 is installed."
    ${EndIf}
  SectionEnd
!endif

Section "-Apps and features"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "${PRODUCT}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\${MAIN_EXE},0"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "EstimatedSize" $0
SectionEnd

Function .onInit
  !ifdef APP
    ; A fresh install starts at sign-in unless unticked; an upgrade keeps the choice in place, which the
    ; app's own setting may have changed since.
    ReadRegStr $0 HKCU "${UNINSTALL_KEY}" "InstallLocation"
    ${If} $0 != ""
      ReadRegStr $1 HKCU "${RUN_KEY}" "${RUN_VALUE}"
      ${If} $1 == ""
        !insertmacro UnselectSection ${SecAutostart}
      ${EndIf}
    ${EndIf}
  !endif
FunctionEnd

!ifdef APP
  ; The WebView2 Runtime's version, or "" where it is not installed: Microsoft's documented check, the
  ; EdgeUpdate client's "pv" value, machine-wide (both registry views) or for this user.
  Function WebView2Version
    Push $0
    ReadRegStr $0 HKLM "SOFTWARE\WOW6432Node\${WEBVIEW2_CLIENT}" "pv"
    ${If} $0 == ""
    ${OrIf} $0 == "0.0.0.0"
      ReadRegStr $0 HKLM "SOFTWARE\${WEBVIEW2_CLIENT}" "pv"
    ${EndIf}
    ${If} $0 == ""
    ${OrIf} $0 == "0.0.0.0"
      ReadRegStr $0 HKCU "Software\${WEBVIEW2_CLIENT}" "pv"
    ${EndIf}
    ${If} $0 == "0.0.0.0"
      StrCpy $0 ""
    ${EndIf}
    Exch $0
  FunctionEnd
!endif

Section "Uninstall"
  ; Asked first, before anything is gone. Silent (/S) keeps the data, as does the default button.
  StrCpy $R0 keep
  MessageBox MB_YESNO|MB_ICONQUESTION|MB_DEFBUTTON1 \
    "Keep your ${PRODUCT} data (earnings, receipts and settings in ${DATA_DIR})?$\r$\n$\r$\nChoose No to delete it together with the program." \
    /SD IDYES IDYES data_asked
  StrCpy $R0 delete
  data_asked:

  Call un.CloseRunning
  Delete "$SMPROGRAMS\${PRODUCT}.lnk"
  DeleteRegValue HKCU "${RUN_KEY}" "${RUN_VALUE}"
  DeleteRegValue HKCU "${STARTUP_APPROVED_KEY}" "${RUN_VALUE}"
  ; The program's own files only, by name: $INSTDIR may be a folder the person chose, with more in it.
  Delete "$INSTDIR\idlegrid.exe"
  Delete "$INSTDIR\idlegrid-desktop.exe"
  Delete "$INSTDIR\idlegrid-window.exe"
  Delete "$INSTDIR\WebView2Loader.dll"
  RMDir /r "$INSTDIR\examples"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"

  ${If} $R0 == delete
    RMDir /r "${DATA_DIR}"
    DetailPrint "Removed ${DATA_DIR}"
  ${Else}
    DetailPrint "Kept ${DATA_DIR}"
  ${EndIf}
SectionEnd
