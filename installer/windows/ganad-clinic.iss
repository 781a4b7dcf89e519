; Inno Setup script: a Windows installer for the one-folder build of GANAD Clinic.
;
; This cannot be built on the project's Linux machines (PyInstaller does not cross-compile and Inno
; Setup is a Windows program). On a Windows x64 machine with Python 3.11+ and Inno Setup 6:
;
;   py -3.11 -m venv .venv
;   .venv\Scripts\python -m pip install -c constraints.txt -e ".[installer]"
;   .venv\Scripts\pyinstaller --noconfirm --distpath dist --workpath build\installer installer\ganad.spec
;   dist\ganad\ganad.exe --version
;   "%ProgramFiles(x86)%\Inno Setup 6\ISCC.exe" installer\windows\ganad-clinic.iss
;
; which writes dist\ganad-clinic-<version>-setup.exe. The installer copies dist\ganad\ to
; Program Files (or the user's programs folder without admin rights) and adds Start-menu entries.
; The data folder (database, models, heat maps) is not in the program folder: it is the user's
; %LOCALAPPDATA%\ganad-clinic\ganad-clinic unless --home or GANAD_HOME says otherwise, exactly as
; for the pip-installed package, and uninstalling leaves it in place.

; AppVersion: keep in step with ganad_clinic/__init__.py (or pass /DAppVersion=x.y.z to ISCC)
#define AppName "GANAD Clinic"
#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define DistDir "..\..\dist\ganad"

[Setup]
AppId={{6B0F3C1E-4A5D-4E8B-9C2A-7D1E5F3A9B40}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=GANAD Clinic
DefaultDirName={autopf}\GANAD Clinic
DefaultGroupName=GANAD Clinic
DisableProgramGroupPage=yes
PrivilegesRequired=admin
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=ganad-clinic-{#AppVersion}-setup
Compression=lzma2/max
SolidCompression=yes
; the bundle is several hundred MB, mostly torch: keep the setup in one file
DiskSpanning=no
WizardStyle=modern
UninstallDisplayIcon={app}\ganad-app.exe
UninstallDisplayName={#AppName}

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
; the whole one-folder build: ganad.exe (command line), ganad-app.exe (window) and _internal\
; (the Linux menu entry and install script that `make installer` copies there are left out)
Source: "{#DistDir}\*"; DestDir: "{app}"; Excludes: "install.sh,ganad-clinic.desktop,ganad-clinic.png"; \
    Flags: ignoreversion recursesubdirs createallsubdirs

[InstallDelete]
; an older version's files must not linger beside the new ones
Type: filesandordirs; Name: "{app}\_internal"

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\ganad-app.exe"; Comment: "Screen blood-smear slides for anomalies"
Name: "{group}\{#AppName} command prompt"; Filename: "{cmd}"; Parameters: "/k ""{app}\ganad.exe"" --help"; WorkingDir: "{userdocs}"
Name: "{group}\{cm:UninstallProgram,{#AppName}}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\ganad-app.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\ganad-app.exe"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent
